package scriptrun

import (
	"sort"
	"strings"
)

// Redacted replaces a sensitive variable's value in a script's output.
const Redacted = "(sensitive)"

// minSecretLen is the shortest value masked: masking every "1" or "on"
// would garble the log and hide nothing worth hiding.
const minSecretLen = 4

// redactor masks the values of sensitive variables in what a script
// printed, before it is streamed, recorded or returned: a script that
// echoes its credential, or an exception quoting it, must not put it into
// a run record, a terminal or a Terraform diagnostic.
type redactor struct{ r *strings.Replacer }

func newRedactor(vars []variable) redactor {
	var secrets []string
	for _, v := range vars {
		if v.Sensitive && len(v.Value) >= minSecretLen {
			secrets = append(secrets, v.Value)
		}
	}
	if len(secrets) == 0 {
		return redactor{}
	}
	// Longest first: a value containing another is masked whole.
	sort.Slice(secrets, func(i, j int) bool { return len(secrets[i]) > len(secrets[j]) })
	pairs := make([]string, 0, 2*len(secrets))
	for _, s := range secrets {
		pairs = append(pairs, s, Redacted)
	}
	return redactor{r: strings.NewReplacer(pairs...)}
}

func (r redactor) String(s string) string {
	if r.r == nil {
		return s
	}
	return r.r.Replace(s)
}
