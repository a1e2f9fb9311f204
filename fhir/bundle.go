package fhir

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/tidwall/gjson"
)

// bundle writes a Bundle around stored resource JSON without decoding and
// re-encoding it: the stored bytes are already in their final form.
type bundle struct {
	buf     bytes.Buffer
	base    string
	entries int
}

// newCollection starts a Bundle of type collection.
func newCollection(base string, now time.Time) *bundle {
	b := &bundle{base: base}
	b.buf.WriteString(`{"resourceType":"Bundle","type":"collection","timestamp":`)
	ts, _ := json.Marshal(now.UTC().Format(time.RFC3339Nano))
	b.buf.Write(ts)
	b.buf.WriteString(`,"entry":[`)
	return b
}

// add appends a resource with its absolute fullUrl.
func (b *bundle) add(typ, id string, resource []byte) {
	b.sep()
	b.buf.WriteString(`{"fullUrl":`)
	u, _ := json.Marshal(b.base + "/" + typ + "/" + id)
	b.buf.Write(u)
	b.buf.WriteString(`,"resource":`)
	b.buf.Write(resource)
	b.buf.WriteByte('}')
}

// addUnnamed appends a resource without an id (an OperationOutcome).
func (b *bundle) addUnnamed(resource []byte) {
	b.sep()
	b.buf.WriteString(`{"resource":`)
	b.buf.Write(resource)
	b.buf.WriteByte('}')
}

func (b *bundle) sep() {
	if b.entries > 0 {
		b.buf.WriteByte(',')
	}
	b.entries++
}

// bytes closes the Bundle. An empty Bundle has no entry element at all,
// since FHIR JSON forbids empty arrays.
func (b *bundle) bytes() []byte {
	if b.entries == 0 {
		out := bytes.TrimSuffix(b.buf.Bytes(), []byte(`,"entry":[`))
		return append(out, '}')
	}
	b.buf.WriteString(`]}`)
	return b.buf.Bytes()
}

// resourceKey reads resourceType and id from resource JSON.
func resourceKey(resource []byte) (typ, id string) {
	r := gjson.GetManyBytes(resource, "resourceType", "id")
	return r[0].String(), r[1].String()
}

// baseURL is the absolute base of the FHIR API as the caller reached it.
func baseURL(c echo.Context) string {
	return c.Scheme() + "://" + c.Request().Host + "/fhir/r4"
}
