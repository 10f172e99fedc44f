package buildgate

import (
	"net/http"
	"net/url"
	"testing"
)

const (
	own = "aim/part-comparer/api"
	dg  = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)

// What a build whose repository is own may do, and what it may not.
func TestCheck(t *testing.T) {
	for _, c := range []struct {
		method, path, query string
		allowed             bool
		forwarded           string // the query forwarded, when allowed
	}{
		// Its own repository: push and pull, the cache tag included.
		{"GET", "/v2/", "", true, ""},
		{"HEAD", "/v2/" + own + "/manifests/latest", "", true, ""},
		{"PUT", "/v2/" + own + "/manifests/buildcache", "", true, ""},
		{"PUT", "/v2/" + own + "/manifests/" + dg, "", true, ""},
		{"GET", "/v2/" + own + "/blobs/" + dg, "", true, ""},
		{"POST", "/v2/" + own + "/blobs/uploads/", "", true, ""},
		{"PATCH", "/v2/" + own + "/blobs/uploads/3f1c-a9_b.c=", "_state=x", true, "_state=x"},
		{"PUT", "/v2/" + own + "/blobs/uploads/3f1c", "digest=" + dg, true, "digest=" + url.QueryEscape(dg)},
		{"GET", "/v2/" + own + "/tags/list", "n=10", true, "n=10"},
		// Base images outside aim/: pull only (the mirror adds ns=).
		{"GET", "/v2/aim-base/python/manifests/bookworm", "ns=docker.io", true, "ns=docker.io"},
		{"HEAD", "/v2/library/debian/blobs/" + dg, "", true, ""},
		{"PUT", "/v2/aim-base/python/manifests/bookworm", "", false, ""},
		{"POST", "/v2/library/debian/blobs/uploads/", "", false, ""},
		{"PATCH", "/v2/library/debian/blobs/uploads/abc", "", false, ""},
		// Other solutions' builds, and aim/ itself.
		{"GET", "/v2/aim/other/api/manifests/latest", "", false, ""},
		{"HEAD", "/v2/aim/other/api/blobs/" + dg, "", false, ""},
		{"PUT", "/v2/aim/other/api/manifests/buildcache", "", false, ""},
		{"GET", "/v2/aim/part-comparer/web/manifests/latest", "", false, ""},
		{"GET", "/v2/aim/part-comparer/api/x/manifests/latest", "", false, ""},
		{"GET", "/v2/aim/manifests/latest", "", false, ""},
		{"GET", "/v2/aim/other/api/tags/list", "", false, ""},
		// The name is the registry's: the last route suffix wins.
		{"GET", "/v2/" + own + "/blobs/x/manifests/latest", "", false, ""},
		{"GET", "/v2/aim/other/api/blobs/aim/part-comparer/api/manifests/latest", "", false, ""},
		// Listing, deleting, paths that are no route.
		{"GET", "/v2/_catalog", "", false, ""},
		{"GET", "/v2/_catalog", "n=100", false, ""},
		{"DELETE", "/v2/" + own + "/manifests/" + dg, "", false, ""},
		{"DELETE", "/v2/" + own + "/blobs/uploads/abc", "", false, ""},
		{"DELETE", "/v2/library/debian/manifests/" + dg, "", false, ""},
		{"POST", "/v2/", "", false, ""},
		{"GET", "/", "", false, ""},
		{"GET", "/v2/" + own, "", false, ""},
		{"GET", "/debug/vars", "", false, ""},
		// Normalisation: what is checked is what is forwarded.
		{"GET", "/v2/" + own + "/../../other/api/manifests/latest", "", false, ""},
		{"GET", "/v2/aim/part-comparer/api/./manifests/latest", "", false, ""},
		{"GET", "/v2/aim%2Fother%2Fapi/manifests/latest", "", false, ""},
		{"GET", "/v2/aim/other/api/manifests/lat%65st", "", false, ""},
		{"GET", "/v2/aim//other/api/manifests/latest", "", false, ""},
		{"GET", "/v2//aim/other/api/manifests/latest", "", false, ""},
		{"GET", "/v2/AIM/other/api/manifests/latest", "", false, ""},
		// Cross-repository mounts: from what the build may read, kept;
		// from anything else, dropped (a plain upload instead).
		{"POST", "/v2/" + own + "/blobs/uploads/", "mount=" + dg + "&from=library/debian", true, "from=library%2Fdebian&mount=" + url.QueryEscape(dg)},
		{"POST", "/v2/" + own + "/blobs/uploads/", "mount=" + dg + "&from=" + own, true, "from=" + url.QueryEscape(own) + "&mount=" + url.QueryEscape(dg)},
		{"POST", "/v2/" + own + "/blobs/uploads/", "mount=" + dg + "&from=aim/other/api", true, ""},
		{"POST", "/v2/" + own + "/blobs/uploads/", "mount=" + dg + "&from=aim/other/api&digest=" + dg, true, "digest=" + url.QueryEscape(dg)},
		{"POST", "/v2/" + own + "/blobs/uploads/", "mount=" + dg + "&from=../aim/other/api", true, ""},
		{"POST", "/v2/" + own + "/blobs/uploads/", "mount=" + dg + "&from=library/debian&from=aim/other/api", true, ""},
		{"POST", "/v2/aim/other/api/blobs/uploads/", "mount=" + dg + "&from=" + own, false, ""},
	} {
		q, err := url.ParseQuery(c.query)
		if err != nil {
			t.Fatal(err)
		}
		fw, refused := Check("aim/", own, c.method, c.path, q)
		if c.allowed != (refused == nil) {
			t.Errorf("%s %s?%s: allowed %v (%v), want %v", c.method, c.path, c.query, refused == nil, refused, c.allowed)
			continue
		}
		if refused != nil {
			if refused.Status != http.StatusForbidden || refused.Code != "DENIED" {
				t.Errorf("%s %s: refused with %d %s, want 403 DENIED", c.method, c.path, refused.Status, refused.Code)
			}
			continue
		}
		if got := fw.Encode(); got != c.forwarded {
			t.Errorf("%s %s?%s: forwards query %q, want %q", c.method, c.path, c.query, got, c.forwarded)
		}
	}
}
