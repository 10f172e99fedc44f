package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aimhub/aim/internal/inquiry"
)

// The marketplace end to end (issue 14): providers deploy solutions with
// phases, tags and a thumbnail; a visitor in Chromium searches and
// filters the catalog, opens a solution's page, writes to its provider
// and tries it; the providers read the inquiries with `aim inquiries`
// and get them at their webhooks, signed.

// marketManifest is a one-component solution of the test image with the
// marketplace's fields.
func marketManifest(name, title, description, provider string, tags, phases []string, thumbnail string) string {
	m := "name: " + name + "\ntitle: " + title + "\ndescription: |\n"
	for _, l := range strings.Split(description, "\n") {
		m += "  " + l + "\n"
	}
	m += "provider: {name: " + provider + ", contact: sales@" + strings.ToLower(strings.Fields(provider)[0]) + ".example}\n"
	m += "tags: [" + strings.Join(tags, ", ") + "]\nphases: [" + strings.Join(phases, ", ") + "]\n"
	if thumbnail != "" {
		m += "thumbnail: " + thumbnail + "\n"
	}
	return m + "components:\n  - name: web\n    image: " + TestImage + "\n"
}

// thumbnailPNG is a small picture: 64×40, two colours.
func thumbnailPNG(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 64, 40))
	for x := range 64 {
		for y := range 40 {
			img.Set(x, y, color.RGBA{uint8(40 + x*3), 90, uint8(200 - y*3), 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// providerToken adds provider name (as the admin) and returns a token of
// its own.
func providerToken(t *testing.T, a *Aim, name, display string) string {
	t.Helper()
	args := []string{"provider", "add", name}
	if display != "" {
		args = append(args, "--display-name", display)
	}
	a.MustCLI(args...)
	out, errOut, err := a.CLI("token", "create", "--provider", name, "--name", "e2e", "--expires", "1d")
	if err != nil {
		t.Fatalf("token create: %v\n%s%s", err, out, errOut)
	}
	return strings.TrimSpace(out)
}

// asProvider runs an aim command with tok and fails the test on error.
func asProvider(t *testing.T, a *Aim, tok string, args ...string) string {
	t.Helper()
	out, errOut, err := a.CLIAs(tok, args...)
	if err != nil {
		t.Fatalf("aim %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// bridgeIP is the Docker bridge's address on this host (docker0): not
// loopback, so aim serve's own Deliverer, which refuses loopback and
// link-local addresses, sends to a receiver listening there.
func bridgeIP(t *testing.T) string {
	t.Helper()
	ifc, err := net.InterfaceByName("docker0")
	if err != nil {
		t.Fatalf("the webhook receivers listen on the docker0 bridge, which this host lacks (is dockerd running?): %v", err)
	}
	addrs, _ := ifc.Addrs()
	for _, ad := range addrs {
		if ipn, ok := ad.(*net.IPNet); ok && ipn.IP.To4() != nil {
			return ipn.IP.String()
		}
	}
	t.Fatalf("docker0 has no IPv4 address: %v", addrs)
	return ""
}

// hook is a provider's webhook receiver. It answers 503 to its first
// failFirst deliveries, then 200, and keeps every delivery it got.
type hook struct {
	*httptest.Server
	failFirst int
	mu        sync.Mutex
	got       []delivery
}

type delivery struct {
	at        time.Time
	status    int
	signature string
	body      []byte
}

func startHook(t *testing.T, ip string, failFirst int) *hook {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatalf("listening on %s for a webhook receiver: %v", ip, err)
	}
	h := &hook{failFirst: failFirst}
	h.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		status := http.StatusOK
		if len(h.got) < h.failFirst {
			status = http.StatusServiceUnavailable
		}
		h.got = append(h.got, delivery{at: time.Now(), status: status, signature: r.Header.Get(inquiry.SignatureHeader), body: body})
		h.mu.Unlock()
		w.WriteHeader(status)
	}))
	h.Listener = ln
	h.Start()
	t.Cleanup(h.Close)
	return h
}

func (h *hook) deliveries() []delivery {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.got)
}

// waitDelivered waits until h answered 200 to a delivery, and returns
// all it got.
func (h *hook) waitDelivered(t *testing.T, within time.Duration) []delivery {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		ds := h.deliveries()
		if n := len(ds); n > 0 && ds[n-1].status == http.StatusOK {
			return ds
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("no delivery answered 200 within %s; got %d", within, len(h.deliveries()))
	return nil
}

// marketResult is what test/browser/market.mjs prints.
type marketResult struct {
	Catalog, Search, Phase marketListing
	PhoneOverflow          int
	Solution               struct {
		URL, Title, State, Try, Description string
		Phases, Tags                        []string
		ThumbWidth                          int
	}
	Contacts []struct{ Name, URL, Sent string }
	TryFirst struct {
		Status   int
		Starting string
	}
	Woken struct {
		URL, H1 string
		Ms      int
	}
	PageErrors, Dialogs []string
}

type marketListing struct {
	URL, Heading, Current string
	Solutions             []string
}

// The visitor of the browser test.
var dana = inquiry.Form{Name: "Dana Visitor", Organisation: "Initech", Email: "dana@initech.example"}

// TestMarketplaceBrowser is AC1 of issue 14 in Chromium. The webhook
// receivers are httptest servers of this test on the docker0 bridge's
// address (bridgeIP), which aim serve's Deliverer sends to as it would
// to any receiver; acme's answers at once, globex's answers 503 first
// and gets the inquiry on the Deliverer's first retry, 10 s later.
func TestMarketplaceBrowser(t *testing.T) {
	ensureBrowser(t)
	a := StartAim(t)
	acme, globex := providerToken(t, a, "acme", "ACME Engineering"), providerToken(t, a, "globex", "")
	asProvider(t, a, acme, "deploy", "-q", writeSolution(t, marketManifest("parts", "Part Comparer",
		"Finds **similar** CAD parts in your catalogue.\n\nUpload an STL and get the nearest parts. <img src=x onerror=alert(1)>",
		"ACME Engineering", []string{"cad", "geometry"}, []string{"product-development"}, "card.png"), map[string]string{"card.png": string(thumbnailPNG(t))}))
	asProvider(t, a, acme, "deploy", "-q", writeSolution(t, marketManifest("planner", "Line Planner", "Plans assembly lines and their stations.",
		"ACME Engineering", []string{"factory"}, []string{"production-system-development", "product-development"}, ""), nil))
	asProvider(t, a, globex, "deploy", "-q", writeSolution(t, marketManifest("trends", "Market Trends", "Reads what markets ask for next.",
		"Globex", []string{"nlp"}, []string{"strategic-product-planning"}, ""), nil))

	ip := bridgeIP(t)
	acmeHook, globexHook := startHook(t, ip, 0), startHook(t, ip, 1)
	secret := func(tok, provider, url string) string {
		out := asProvider(t, a, tok, "provider", "webhook", provider, url)
		_, s, ok := strings.Cut(out, "signing secret: ")
		if !ok {
			t.Fatalf("aim provider webhook printed no secret:\n%s", out)
		}
		return strings.TrimSpace(s)
	}
	acmeSecret, globexSecret := secret(acme, "acme", acmeHook.URL+"/aim"), secret(globex, "globex", globexHook.URL+"/aim")
	t.Logf("webhook receivers on the docker0 bridge: %s (acme), %s (globex)", acmeHook.URL, globexHook.URL)
	putToSleep(t, a, "parts")

	_, port, _ := strings.Cut(a.Addr, ":")
	apex := "http://localhost:" + port
	shots := map[string]string{}
	for _, s := range []string{"catalog", "search", "phase", "phone", "solution", "contact", "sent", "waking", "woken"} {
		shots[s] = artifact(t, "market-"+s+".png")
	}
	form := func(msg string) map[string]string {
		return map[string]string{"name": dana.Name, "organisation": dana.Organisation, "email": dana.Email, "message": msg}
	}
	cfg, _ := json.Marshal(map[string]any{"apex": apex, "search": "cad geometry", "phase": "Production system development", "open": "parts",
		"contacts": []map[string]any{
			{"name": "parts", "form": form("Could we try Part Comparer on our gearbox parts?")},
			{"name": "trends", "form": form("Do you cover the European rail market?")},
		}, "shots": shots})
	var r marketResult
	node(t, 4*time.Minute, &r, "market.mjs", string(cfg))
	for _, s := range shots {
		checkPNG(t, s)
	}
	t.Logf("catalog %v; search %v; phase %v; solution %+v", r.Catalog.Solutions, r.Search.Solutions, r.Phase.Solutions, r.Solution)

	t.Run("a search narrows the catalog", func(t *testing.T) {
		if !slices.Equal(r.Catalog.Solutions, []string{"trends", "planner", "parts"}) {
			t.Errorf("the catalog shows %v, want the three, newest first", r.Catalog.Solutions)
		}
		if !slices.Equal(r.Search.Solutions, []string{"parts"}) || !strings.Contains(r.Search.URL, "q=cad+geometry") ||
			r.Search.Heading != "1 solution matching “cad geometry”" {
			t.Errorf("the search shows %+v", r.Search)
		}
	})
	t.Run("the phase filter works", func(t *testing.T) {
		if !slices.Equal(r.Phase.Solutions, []string{"planner"}) || !strings.HasSuffix(r.Phase.URL, "/?phase=production-system-development") ||
			!strings.Contains(r.Phase.Current, "Production system development") {
			t.Errorf("the phase filter shows %+v", r.Phase)
		}
		if r.PhoneOverflow > 0 {
			t.Errorf("on a phone the catalog is %d px wider than the screen", r.PhoneOverflow)
		}
	})
	t.Run("the solution's page", func(t *testing.T) {
		s := r.Solution
		if s.URL != apex+"/s/parts" || s.Title != "Part Comparer" || s.State != "Sleeping" || s.Try != solutionURL(a, "parts") ||
			!slices.Equal(s.Phases, []string{"Product development"}) || !slices.Equal(s.Tags, []string{"#cad", "#geometry"}) {
			t.Errorf("the page shows %+v", s)
		}
		if s.ThumbWidth != 64 {
			t.Errorf("the thumbnail is %d px wide in the page, want the 64 of the PNG deployed", s.ThumbWidth)
		}
		if !strings.Contains(s.Description, "<strong>similar</strong>") || strings.Contains(s.Description, "onerror") {
			t.Errorf("the description renders as %s", s.Description)
		}
		if len(r.PageErrors)+len(r.Dialogs) > 0 {
			t.Errorf("page errors %v, dialogs %v", r.PageErrors, r.Dialogs)
		}
	})
	t.Run("Try it wakes the solution and reaches it", func(t *testing.T) {
		if r.TryFirst.Status != http.StatusServiceUnavailable || !strings.HasPrefix(r.TryFirst.Starting, "Starting ") {
			t.Errorf("Try it first showed %+v, want aim's starting page", r.TryFirst)
		}
		if r.Woken.H1 != "hello from web" || r.Woken.URL != solutionURL(a, "parts") {
			t.Errorf("Try it ended at %+v", r.Woken)
		}
		t.Logf("Try it: %d ms to the solution's page", r.Woken.Ms)
	})
	t.Run("the provider reads the inquiry with aim inquiries", func(t *testing.T) {
		for _, c := range r.Contacts {
			if c.Sent == "" || !strings.HasSuffix(c.URL, "/s/"+c.Name+"?sent=1#contact") {
				t.Errorf("sending to %s ended at %s without the confirmation", c.Name, c.URL)
			}
		}
		out := asProvider(t, a, acme, "inquiries")
		if !strings.Contains(out, "parts  from Dana Visitor <dana@initech.example>, Initech") ||
			!strings.Contains(out, "Could we try Part Comparer on our gearbox parts?") || strings.Contains(out, "rail") {
			t.Errorf("aim inquiries as acme:\n%s", out)
		}
		if out := asProvider(t, a, globex, "inquiries", "trends"); !strings.Contains(out, "European rail market") || strings.Contains(out, "gearbox") {
			t.Errorf("aim inquiries trends as globex:\n%s", out)
		}
	})
	t.Run("the webhooks get it signed, the failing one on a retry", func(t *testing.T) {
		check := func(name string, h *hook, secret string, attempts int, msg string) {
			ds := h.waitDelivered(t, 45*time.Second)
			if len(ds) != attempts {
				t.Errorf("%s's receiver got %d deliveries, want %d", name, len(ds), attempts)
			}
			last := ds[len(ds)-1]
			if err := inquiry.VerifySignature(secret, last.signature, last.body, time.Now(), 5*time.Minute); err != nil {
				t.Errorf("%s's delivery: %v (%s)", name, err, last.signature)
			}
			var p inquiry.Payload
			if err := json.Unmarshal(last.body, &p); err != nil || p.Event != "inquiry" || p.Name != dana.Name || p.Email != dana.Email || p.Message != msg {
				t.Errorf("%s's delivery: %+v %v", name, p, err)
			}
			if attempts > 1 {
				gap := last.at.Sub(ds[0].at)
				t.Logf("%s: first attempt answered %d, delivered %s later", name, ds[0].status, gap.Round(time.Millisecond))
				if ds[0].status != http.StatusServiceUnavailable || gap < 9*time.Second {
					t.Errorf("%s: the retry came %s after a %d", name, gap, ds[0].status)
				}
			}
		}
		check("acme", acmeHook, acmeSecret, 1, "Could we try Part Comparer on our gearbox parts?")
		check("globex", globexHook, globexSecret, 2, "Do you cover the European rail market?")
		// The store says so too, for the provider to see.
		deadline := time.Now().Add(10 * time.Second)
		for out := ""; ; time.Sleep(300 * time.Millisecond) {
			out = asProvider(t, a, globex, "inquiries")
			if strings.Contains(out, "(webhook: delivered)") {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("aim inquiries does not say delivered:\n%s", out)
				break
			}
		}
	})
}

// TestMarketplaceBadInput is AC6 of issue 14 through the CLI: a
// thumbnail that is no image, or over 1 MiB, is refused at deploy with
// its name and what is wrong, and nothing is deployed; a webhook that is
// no http(s) URL or points at loopback or link-local addresses is
// refused, and none is kept.
func TestMarketplaceBadInput(t *testing.T) {
	a := StartAim(t)
	tok := providerToken(t, a, "acme", "")
	big := append(thumbnailPNG(t), make([]byte, 1<<20)...)
	for _, tc := range []struct {
		name, file, says string
	}{
		{"not an image", "<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>", "thumbnail card.png is not a PNG, JPEG or WebP image"},
		{"over 1 MiB", string(big), fmt.Sprintf("thumbnail card.png is %d bytes; at most 1048576 (1 MiB)", len(big))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeSolution(t, marketManifest("pic", "Pic", "A picture.", "ACME", []string{"x"}, []string{"product-development"}, "card.png"),
				map[string]string{"card.png": tc.file})
			out, errOut, err := a.CLIAs(tok, "deploy", "-q", dir)
			if err == nil || !strings.Contains(errOut, tc.says) {
				t.Errorf("deploy: %v\n%s%s\nwant a refusal saying %q", err, out, errOut, tc.says)
			}
			if ls := a.MustCLI("ls"); strings.Contains(ls, "pic") || len(a.Containers("pic")) > 0 {
				t.Errorf("the refused solution was deployed:\n%s", ls)
			}
			if code, _ := apexGet(t, a, "/s/pic/thumbnail"); code != http.StatusNotFound {
				t.Errorf("its thumbnail is served: %d", code)
			}
		})
	}
	for _, tc := range []struct{ url, says string }{
		{"ftp://hooks.example.com/aim", "is not an http(s) URL"},
		{"http://127.0.0.1:9/aim", "a loopback address aim never sends to"},
		{"http://localhost:9/aim", "points at this machine"},
		{"http://169.254.169.254/latest/meta-data/", "a link-local address aim never sends to"},
		{"http://[fe80::1]/aim", "a link-local address"},
	} {
		out, errOut, err := a.CLIAs(tok, "provider", "webhook", "acme", tc.url)
		if err == nil || !strings.Contains(errOut, tc.says) || strings.Contains(out, "signing secret") {
			t.Errorf("webhook %s: %v\n%s%s\nwant a refusal saying %q", tc.url, err, out, errOut, tc.says)
		}
	}
	if out := a.MustCLI("provider", "ls"); strings.Contains(out, "169.254") || strings.Contains(out, "127.0.0.1") || strings.Contains(out, "ftp:") {
		t.Errorf("a refused webhook was kept:\n%s", out)
	}
}

// apexGet GETs path on a's apex.
func apexGet(t *testing.T, a *Aim, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + a.Addr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// axeResult is what test/browser/axe.mjs prints.
type axeResult struct {
	Pages []struct {
		Name, URL  string
		Status     int
		Passes     int
		Violations []struct {
			ID, Impact, Help string
			Nodes            []string
		}
	}
}

// axeCanary is a page axe must fault (an image without alt text, an
// input without a label, text too faint to read): a run that finds
// nothing in it did not check anything.
var axeCanary = map[string]any{"name": "canary", "html": `<!doctype html><html lang="en"><title>canary</title><main>` +
	`<img src="data:,"><input type="text"><p style="color:#ccc;background:#fff">faint</p></main></html>`}

// runAxe runs axe-core on pages in Chromium (signed in as user first,
// when set), with the canary first, and fails the test for every serious
// or critical violation; the others are logged.
func runAxe(t *testing.T, cfg map[string]any) {
	t.Helper()
	cfg["pages"] = append([]map[string]any{axeCanary}, cfg["pages"].([]map[string]any)...)
	b, _ := json.Marshal(cfg)
	var r axeResult
	node(t, 3*time.Minute, &r, "axe.mjs", string(b))
	if len(r.Pages) == 0 || len(r.Pages[0].Violations) < 3 {
		t.Fatalf("axe found %+v in the canary, want its image, input and faint text faulted", r.Pages)
	}
	var canary []string
	for _, v := range r.Pages[0].Violations {
		canary = append(canary, v.Impact+" "+v.ID)
	}
	t.Logf("axe faults the canary: %v", canary)
	for _, p := range r.Pages[1:] {
		var minor []string
		for _, v := range p.Violations {
			if v.Impact == "serious" || v.Impact == "critical" {
				t.Errorf("%s (%s, %d): %s violation %s: %s, at %v", p.Name, p.URL, p.Status, v.Impact, v.ID, v.Help, v.Nodes)
			} else {
				minor = append(minor, v.Impact+" "+v.ID)
			}
		}
		t.Logf("axe on %s (%s, %d): %d rules pass, %d violations; minor and moderate: %v", p.Name, p.URL, p.Status, p.Passes, len(p.Violations), minor)
	}
}

// TestMarketplaceAccessibility is AC2 of issue 14 for the pages built
// here: axe-core in Chromium reports no serious or critical violation on
// the catalog (plain, filtered, with nothing matching), a solution's page
// (with its contact form, and with the form's problems shown), the
// not-found page and the sign-in pages: the notice when sign-in is not
// configured, and with a real OpenID provider the catalog and pages of
// someone signed in.
func TestMarketplaceAccessibility(t *testing.T) {
	ensureBrowser(t)
	deployParts := func(a *Aim) {
		a.MustCLI("deploy", "-q", writeSolution(t, marketManifest("parts", "Part Comparer",
			"Finds **similar** CAD parts.\n\n| input | output |\n|---|---|\n| STL | ranked parts |\n\nSee [the docs](https://example.com/docs).",
			"ACME Engineering", []string{"cad", "geometry"}, []string{"product-development", "service-development"}, "card.png"),
			map[string]string{"card.png": string(thumbnailPNG(t))}))
	}
	t.Run("without sign-in", func(t *testing.T) {
		a := StartAim(t)
		deployParts(a)
		a.MustCLI("deploy", "-q", writeSolution(t, marketManifest("trends", "Market Trends", "Reads markets.", "Globex",
			[]string{"nlp"}, []string{"strategic-product-planning"}, ""), nil))
		apex := "http://" + a.Addr
		runAxe(t, map[string]any{"pages": []map[string]any{
			{"name": "the catalog", "url": apex + "/", "shot": artifact(t, "axe-catalog.png")},
			{"name": "the catalog filtered", "url": apex + "/?phase=product-development&sort=used"},
			{"name": "the catalog, nothing matching", "url": apex + "/?q=quantum"},
			{"name": "a solution's page", "url": apex + "/s/parts", "shot": artifact(t, "axe-solution.png")},
			{"name": "a contact form with problems", "url": apex + "/s/parts", "contact": map[string]string{"name": "", "email": "dana at initech", "message": "Hello"},
				"shot": artifact(t, "axe-contact-problems.png")},
			{"name": "not found", "url": apex + "/s/nope"},
			{"name": "sign-in not configured", "url": apex + "/auth/login", "shot": artifact(t, "axe-signin-not-configured.png")},
		}})
	})
	t.Run("signed in", func(t *testing.T) {
		a := startSignInAim(t)
		deployParts(a.Aim)
		a.MustCLI("deploy", "-q", writeSolution(t, privateManifest("vault", annUser.Email), nil))
		runAxe(t, map[string]any{"pages": []map[string]any{{"name": "the catalog, anonymous with a Sign in link", "url": a.apex + "/"}}})
		runAxe(t, map[string]any{"signIn": map[string]string{"apex": a.apex, "user": annUser.Username, "password": annUser.Password},
			"pages": []map[string]any{
				{"name": "the catalog, signed in", "url": a.apex + "/", "shot": artifact(t, "axe-catalog-signed-in.png")},
				{"name": "a solution's page, signed in", "url": a.apex + "/s/parts"},
				{"name": "a private solution's page", "url": a.apex + "/s/vault", "shot": artifact(t, "axe-private-solution.png")},
			}})
	})
}
