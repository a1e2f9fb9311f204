package secrets

import "testing"

func TestParseRef(t *testing.T) {
	t.Parallel()
	got, err := ParseRef("vault:kv/kapgw/partners/ehr-1#private_key")
	if err != nil {
		t.Fatalf("ParseRef: %v", err)
	}
	want := Ref{Scheme: SchemeVault, Mount: "kv", Path: "kapgw/partners/ehr-1", Field: "private_key"}
	if got != want {
		t.Fatalf("ParseRef = %+v, want %+v", got, want)
	}
	if got.String() != "vault:kv/kapgw/partners/ehr-1#private_key" {
		t.Fatalf("String = %q", got.String())
	}
	local, err := ParseRef("local:kv/dev/webhook#hmac")
	if err != nil || local.Scheme != SchemeLocal {
		t.Fatalf("ParseRef(local) = %+v, %v", local, err)
	}
}

func TestParseRefRejects(t *testing.T) {
	t.Parallel()
	for _, s := range []string{
		"",
		"kv/a#b",
		"file:/etc/passwd#x",
		"vault:kv/a",
		"vault:kv/a#",
		"vault:kv#f",
		"vault:/a#f",
		"vault:kv/#f",
		"vault:kv/a//b#f",
		"vault:kv/../sys#f",
		"vault:kv/a/./b#f",
		"vault:kv/a?list=true#f",
		"vault:kv/a#f#g",
		"s3cr3t-value",
	} {
		if _, err := ParseRef(s); err == nil {
			t.Errorf("ParseRef(%q) succeeded, want error", s)
		}
	}
}
