package scriptrun

import "testing"

func TestRedactor_MasksSensitiveValuesOnly(t *testing.T) {
	r := newRedactor([]variable{
		{Name: "TOKEN", Value: "s3cr3t-token", Sensitive: true},
		{Name: "PREFIX", Value: "s3cr3t", Sensitive: true},
		{Name: "PIN", Value: "42", Sensitive: true},
		{Name: "USER", Value: "ann"},
	})
	cases := []struct{ in, want string }{
		{"auth with s3cr3t-token failed", "auth with (sensitive) failed"},
		{"prefix s3cr3t and s3cr3t-token", "prefix (sensitive) and (sensitive)"},
		{"user ann, pin 42", "user ann, pin 42"},
		{"", ""},
	}
	for _, tc := range cases {
		if got := r.String(tc.in); got != tc.want {
			t.Errorf("String(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := newRedactor(nil).String("s3cr3t"); got != "s3cr3t" {
		t.Errorf("no sensitive variables: %q", got)
	}
}
