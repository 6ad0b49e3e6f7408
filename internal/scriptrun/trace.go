package scriptrun

import (
	"strings"
)

// trapMarker starts the lines the bash ERR trap prints.
const trapMarker = "unikube-script: "

// bashWrapper runs the script body (its path is $1) in strict mode with an
// ERR trap that prints the failing file, line and command, and the call
// stack. The body is sourced, so LINENO is its own line number. Nothing of
// the variables is in this text: they are only in the environment.
// stderr joins stdout: two pipes reach the pod log in no fixed order, and
// the trace is cut from the log by position.
const bashWrapper = `exec 2>&1
set -Eeuo pipefail
trap '__uk_rc=$? __uk_line=$LINENO; set +u
printf '"'"'unikube-script: error: %s line %s: command %s exited %s\n'"'"' "${BASH_SOURCE[0]##*/}" "$__uk_line" "$BASH_COMMAND" "$__uk_rc" >&2
for ((__uk_i=0; __uk_i+1<${#FUNCNAME[@]}; __uk_i++)); do
  [[ ${FUNCNAME[$__uk_i]} == source ]] && break
  printf '"'"'unikube-script:   in %s, called at %s line %s\n'"'"' "${FUNCNAME[$__uk_i]}" "${BASH_SOURCE[$__uk_i+1]##*/}" "${BASH_LINENO[$__uk_i]}" >&2
done' ERR
__uk_script=$1
shift
source "$__uk_script"
`

// ExtractTrace returns the stack trace of a failed run from its log: the
// python traceback (with chained exceptions), or for bash the trap's error
// line and call stack with the lines before it, or for sh (and a bash
// script that failed without the trap, e.g. `exit 3` or an unbound
// variable) the last lines of the log.
func ExtractTrace(interpreter, log string) string {
	lines := strings.Split(strings.TrimRight(log, "\n"), "\n")
	if len(lines) == 1 && lines[0] == "" {
		return ""
	}
	switch interpreter {
	case InterpreterPython:
		if t := pythonTrace(lines); t != "" {
			return t
		}
	case InterpreterBash:
		if t := bashTrace(lines); t != "" {
			return t
		}
	}
	return lastLines(strings.Join(lines, "\n"), 20) + "\n"
}

func pythonTrace(lines []string) string {
	const head = "Traceback (most recent call last):"
	start := -1
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.TrimSpace(lines[i]) == head {
			start = i
			break
		}
	}
	if start < 0 {
		return ""
	}
	// Chained exceptions: the block before says how they are linked.
	for {
		j := start - 1
		for j >= 0 && strings.TrimSpace(lines[j]) == "" {
			j--
		}
		if j < 0 {
			break
		}
		l := strings.TrimSpace(lines[j])
		if l != "During handling of the above exception, another exception occurred:" &&
			l != "The above exception was the direct cause of the following exception:" {
			break
		}
		prev := -1
		for k := j - 1; k >= 0; k-- {
			if strings.TrimSpace(lines[k]) == head {
				prev = k
				break
			}
		}
		if prev < 0 {
			break
		}
		start = prev
	}
	return strings.Join(lines[start:], "\n") + "\n"
}

func bashTrace(lines []string) string {
	at := -1
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(lines[i], trapMarker+"error: ") {
			at = i
			break
		}
	}
	if at < 0 {
		return ""
	}
	end := at + 1
	for end < len(lines) && strings.HasPrefix(lines[end], trapMarker+"  ") {
		end++
	}
	start := max(at-10, 0)
	return strings.Join(lines[start:end], "\n") + "\n"
}
