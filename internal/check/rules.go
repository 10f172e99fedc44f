package check

// Rule is one rule of the packaging standard as aim check verifies it.
// docs/packaging.md explains each one and its reason.
type Rule struct {
	ID string
	// Text states the rule in a line.
	Text string
	// Required rules fail a solution; the others only warn.
	Required bool
	// Fix says what a provider changes when the rule is not met.
	Fix string
	// Fast rules run in aim deploy against the running containers.
	Fast bool
}

// Rules is the standard, in the order reports list it.
var Rules = []Rule{
	{ID: "starts", Required: true,
		Text: "keeps running once started",
		Fix:  "the process exited: read what its output says above; a missing file or a write to the read-only filesystem are the usual causes"},
	{ID: "port-8080", Required: true,
		Text: "serves HTTP on 0.0.0.0:8080 within the start-up limit",
		Fix:  "listen on 0.0.0.0:8080 (aim sets PORT=8080), not on 127.0.0.1 or another port; load models before listening, but within the start-up limit"},
	{ID: "root-html", Required: true, Fast: true,
		Text: "GET / answers 200 with text/html",
		Fix:  "serve a web page at / that lets a visitor try the solution; put the API under a path such as /api"},
	{ID: "read-only-fs", Required: true,
		Text: "keeps no state: runs with a read-only root filesystem, only /tmp and its writable paths writable",
		Fix:  "write caches and scratch files under /tmp (a small tmpfs), or name the directories it writes in aim.yaml's writable: (each a tmpfs of its own); bake model weights into the image at build time"},
	{ID: "sigterm", Required: true,
		Text: "exits within 10s of SIGTERM",
		Fix:  "handle SIGTERM (as PID 1 the default action does not apply): stop accepting, finish in-flight requests, exit; use the exec form ENTRYPOINT [\"/app\"] so the signal reaches your process"},
	{ID: "memory-idle", Required: true,
		Text: "stays under its memory limit when idle",
		Fix:  "raise resources.memory in aim.yaml, or load less at start (smaller or quantised models, lazy loading)"},
	{ID: "siblings", Required: true, Fast: true,
		Text: "a private component answers its siblings at http://<name>:8080",
		Fix:  "listen on 0.0.0.0:8080 and accept any Host header (siblings call http://<name>:8080)"},
	{ID: "openapi", Fast: true,
		Text: "publishes an OpenAPI document (/openapi.json or a link from the root page)",
		Fix:  "serve the API's OpenAPI document at /openapi.json (FastAPI does by default) or link it from the root page; the catalog shows the link"},
	{ID: "health", Fast: true,
		Text: "answers a health path (/healthz, /health, /livez or /readyz)",
		Fix:  "answer GET /healthz with 200 once the solution can serve, cheaply"},
	{ID: "readiness",
		Text: "is judged ready only once it can serve: no probed path answers 5xx after that",
		Fix:  "name a path that answers 2xx only once the component can serve in aim.yaml, under the component: ready: {path: /-/ready}"},
	{ID: "image-size", Text: "the image is small enough to start fast",
		Fix: "use a slim base (or FROM scratch for static binaries), a multi-stage build, and a .dockerignore"},
	{ID: "startup-time", Text: "answers soon after it starts",
		Fix: "a sleeping solution wakes on a visitor's request: load less at start, or load lazily behind the root page"},
	{ID: "no-internet", Text: "does not reach the internet at start",
		Fix: "many platforms give a solution no internet: bake model weights and data into the image (download them in the Dockerfile, or COPY them)"},
	{ID: "image-tmp", Text: "the image keeps nothing under /tmp (aim mounts an empty tmpfs there)",
		Fix: "put the application's files outside /tmp (WORKDIR /app, COPY . /app): the tmpfs aim mounts at /tmp hides whatever the image has there"},
	{ID: "writes-lost", Text: "keeps nothing it must not lose: what it writes is lost when it sleeps",
		Fix: "keep uploads, notebooks and databases in a volume, and write them there rather than under /tmp: in aim.yaml, under the component, volumes: [{name: data, path: /data, size: 1Gi}] (docs/packaging.md, \"Volumes\")"},
}

func ruleByID(id string) Rule {
	for _, r := range Rules {
		if r.ID == id {
			return r
		}
	}
	panic("check: unknown rule " + id)
}

// NewResult makes a Result of rule id, with the fix when it is not a pass.
func NewResult(id, comp string, st Status, evidence string) Result {
	r := ruleByID(id)
	res := Result{ID: id, Component: comp, Rule: r.Text, Status: st, Evidence: evidence}
	if st == Fail || st == Warn {
		res.Fix = r.Fix
	}
	return res
}

// FailOrWarn is Fail for a required rule and Warn for a recommendation.
func FailOrWarn(id string) Status {
	if ruleByID(id).Required {
		return Fail
	}
	return Warn
}
