package driver

import "fmt"

// OptKeepPrevious bounds the copies of the previous data a swap leaves
// next to the target (`<db>_unikube_prev` for PostgreSQL and MySQL).
const OptKeepPrevious = "keep_previous"

// KeepPrevious reads option keep_previous: 1 (the default) keeps the data
// an apply replaced until the next successful apply replaces or removes it;
// 0 removes it at the end of the apply that made it. Only one previous copy
// is ever kept, so the disk a target needs stays bounded.
func KeepPrevious(t Target) (int, error) {
	switch v := t.Option(OptKeepPrevious, "1"); v {
	case "0":
		return 0, nil
	case "1":
		return 1, nil
	default:
		return 0, fmt.Errorf("option %s=%q: want 1 (keep the data the apply replaced until the next apply) or 0 (remove it once the apply succeeded)", OptKeepPrevious, v)
	}
}
