package fhirjson

// The scanning helpers below walk JSON that encoding/json has already
// checked (Marshal's own output, or input that passed json.Valid), so they
// only track structure and never validate.

// skipWS moves pos past JSON whitespace.
func skipWS(in []byte, pos int) int {
	for pos < len(in) {
		switch in[pos] {
		case ' ', '\t', '\n', '\r':
			pos++
		default:
			return pos
		}
	}
	return pos
}

// skipString returns the position just after the string starting at pos.
func skipString(in []byte, pos int) int {
	for pos++; pos < len(in); pos++ {
		switch in[pos] {
		case '\\':
			pos++
		case '"':
			return pos + 1
		}
	}
	return pos
}

// skipValue returns the position just after the value starting at pos.
func skipValue(in []byte, pos int) int {
	pos = skipWS(in, pos)
	depth := 0
	for pos < len(in) {
		switch in[pos] {
		case '"':
			pos = skipString(in, pos)
			if depth == 0 {
				return pos
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return pos + 1
			}
		case ',', ':', ' ', '\t', '\n', '\r':
		default:
			if depth == 0 {
				return skipLiteral(in, pos)
			}
		}
		pos++
	}
	return pos
}

// skipLiteral returns the position just after a number, true, false or null.
func skipLiteral(in []byte, pos int) int {
	for pos < len(in) {
		switch in[pos] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return pos
		}
		pos++
	}
	return pos
}

// readKey reads the member name at pos (which must be a string) and returns
// it without quotes, with pos moved past the colon.
func readKey(in []byte, pos int) ([]byte, int) {
	end := skipString(in, pos)
	key := in[pos+1 : end-1]
	pos = skipWS(in, end)
	return key, skipWS(in, pos+1)
}

// memberValue returns the raw value of member name in the object starting at
// pos, or nil when the object has no such member.
func memberValue(in []byte, pos int, name string) []byte {
	pos = skipWS(in, pos) + 1
	for pos < len(in) {
		pos = skipWS(in, pos)
		switch in[pos] {
		case '}':
			return nil
		case ',':
			pos++
			continue
		}
		key, vpos := readKey(in, pos)
		end := skipValue(in, vpos)
		if string(key) == name {
			return in[vpos:end]
		}
		pos = end
	}
	return nil
}
