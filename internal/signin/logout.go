package signin

import (
	"crypto/hmac"
	"net/http"
	"net/url"

	"github.com/aimhub/aim/internal/web"
)

// logout ends the browser's platform session, the per-solution sessions
// made from it, and then, where the provider says how, its session there.
//
// It is a POST that must come from the apex's own pages: every solution
// is same-site with the apex (a subdomain of the same domain), so the
// browser sends the Lax session cookie with a form a solution's page
// posts here. The Origin header (where the browser sends one) must be the
// apex, and the form must carry the session's CSRF token, which only the
// apex's pages know.
func (s *SignIn) logout(w http.ResponseWriter, r *http.Request) {
	if o := r.Header.Get("Origin"); o != "" && o != s.apex.String() {
		s.log.Warn("sign-out refused: posted from another origin", "origin", o)
		s.notice(w, r, http.StatusForbidden, web.Notice{Title: "Sign-out refused",
			Paragraphs: []string{"The sign-out came from a page of another site. Sign out from aim's own pages."}, Link: "/", LinkText: "Back to the catalog"})
		return
	}
	se, secret := s.session(r)
	if se != nil {
		key, err := s.signingKey(r.Context())
		if err != nil {
			s.internal(w, r, "reading the sign-in key", err)
			return
		}
		if !hmac.Equal([]byte(r.PostFormValue("csrf")), []byte(csrfToken(key, se.ID))) {
			s.log.Warn("sign-out refused: no valid CSRF token", "email", se.Email)
			s.notice(w, r, http.StatusForbidden, web.Notice{Title: "Sign-out refused",
				Paragraphs: []string{"The sign-out form was out of date. Use the Sign out button again."}, Link: "/", LinkText: "Back to the catalog"})
			return
		}
		if err := s.st.DeleteSession(r.Context(), secret); err != nil {
			s.internal(w, r, "ending the session", err)
			return
		}
		if s.cfg.Guard != nil {
			s.cfg.Guard.ForgetSessionsOf(se.ID)
		}
		s.log.Info("signed out", "subject", se.Subject, "email", se.Email)
	}
	http.SetCookie(w, hostCookie(SessionCookie, "", -1))
	next := "/"
	if s.Enabled() {
		if p, err := s.discover(r.Context()); err == nil && p.endSession != "" {
			if u, err := url.Parse(p.endSession); err == nil {
				q := u.Query()
				q.Set("client_id", s.cfg.ClientID)
				q.Set("post_logout_redirect_uri", s.PostLogoutURL())
				u.RawQuery = q.Encode()
				next = u.String()
			}
		}
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}
