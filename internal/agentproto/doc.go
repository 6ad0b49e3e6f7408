// Package agentproto is the contract between unikube-agent and the clients
// that run it in Jobs (the Kubernetes executor's apply, plan and capture,
// and the seed Jobs of helm state install): the agent's command lines,
// built by Restore.Args, Capture.Args and Fetch.Args and read back by the
// agent with ParseRestore, ParseCapture and ParseFetch, and the JSON lines
// it writes on stdout (Line), read by Parse and Reader. A driver's pod
// needs (postgres stages its archive in the pod's scratch directory) come
// from the driver itself (driver.PodNeeds), never from the callers.
//
// Nothing else builds the agent's arguments or parses its lines: a new
// flag or line field is added here, once, for both sides.
package agentproto
