package fhirjson

import "strings"

// checker walks a document with the schema and collects the required
// elements (per samply's struct definitions) that are absent, null or empty.
type checker struct {
	in      []byte
	pos     int
	path    []pathElem
	missing []string
}

// checkRequired returns the paths of missing required elements of data,
// which must be valid JSON.
func checkRequired(data []byte) []string {
	c := checker{in: data}
	c.value(tResource)
	return c.missing
}

// value walks the value at pos and reports whether it is present (not null,
// "", {} or []).
func (c *checker) value(t typeID) bool {
	c.pos = skipWS(c.in, c.pos)
	start := c.pos
	switch c.in[start] {
	case '{':
		return c.object(t)
	case '[':
		return c.array(t)
	}
	c.pos = skipValue(c.in, start)
	v := string(c.in[start:c.pos])
	return v != "null" && v != `""`
}

func (c *checker) array(t typeID) bool {
	c.pos++
	present := false
	for {
		c.pos = skipWS(c.in, c.pos)
		switch c.in[c.pos] {
		case ']':
			c.pos++
			return present
		case ',':
			c.pos++
			continue
		}
		present = c.value(t) || present
	}
}

func (c *checker) object(t typeID) bool {
	if t == tResource {
		rt := memberValue(c.in, c.pos, "resourceType")
		name := []byte(strings.Trim(string(rt), `"`))
		c.path = append(c.path, pathElem{name: name, resource: true})
		defer func() { c.path = c.path[:len(c.path)-1] }()
		if len(name) == 0 {
			c.missing = append(c.missing, "resourceType")
		}
		t = resourceTypeID(string(name))
	}
	var seen, choices uint64
	present := false
	c.pos++
	for {
		c.pos = skipWS(c.in, c.pos)
		switch c.in[c.pos] {
		case '}':
			c.pos++
			c.report(t, seen, choices)
			return present
		case ',':
			c.pos++
			continue
		}
		var key []byte
		key, c.pos = readKey(c.in, c.pos)
		c.path = append(c.path, pathElem{name: key})
		ok := c.value(fieldType(t, string(key)))
		c.path = c.path[:len(c.path)-1]
		if !ok {
			continue
		}
		present = true
		if i := listIndex(requiredFields(t), key); i >= 0 {
			seen |= 1 << i
		}
		if _, g := choiceGroup(t, key); g >= 0 {
			choices |= 1 << g
		}
	}
}

// report records the required elements and choice elements of t that were
// not seen.
func (c *checker) report(t typeID, seen, choices uint64) {
	c.reportList(requiredFields(t), seen, "")
	c.reportList(choiceGroups(t), choices, "[x]")
}

func (c *checker) reportList(list string, seen uint64, suffix string) {
	for i := 0; list != ""; i++ {
		var name string
		name, list, _ = strings.Cut(list, " ")
		if seen&(1<<i) == 0 {
			c.missing = append(c.missing, joinPath(c.path)+"."+name+suffix)
		}
	}
}
