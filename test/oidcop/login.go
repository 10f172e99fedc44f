package oidcop

import (
	"context"
	"html/template"
	"log/slog"
	"net/http"

	"github.com/zitadel/oidc/v3/pkg/op"
)

const (
	loginPath     = "/login"
	loggedOutPath = "/logged-out"
)

// login is the login form the op sends users to (Client.LoginURL): GET
// shows it for an authorization request, POST checks the password and
// sends the browser on to the op's callback, which redirects to the
// client with a code.
type login struct {
	store    *storage
	logger   *slog.Logger
	action   string // the form's action: the issuer's path + loginPath
	callback func(ctx context.Context, requestID string) string
	issuer   string
}

// loginPage is what the login template shows.
type loginPage struct {
	Action   string
	ID       string
	Client   string
	Username string
	Error    string
}

func (l *login) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form: "+err.Error(), http.StatusBadRequest)
		return
	}
	id := r.Form.Get("id")
	req, ok := l.store.pendingRequest(id)
	if !ok {
		page(w, http.StatusBadRequest, "Sign-in request unknown",
			"This sign-in request is unknown or already finished. Go back to the application and sign in again.")
		return
	}
	p := loginPage{Action: l.action, ID: id, Client: req.ClientID, Username: req.LoginHint}
	if r.Method == http.MethodGet {
		renderLogin(w, http.StatusOK, p)
		return
	}
	username, password := r.PostForm.Get("username"), r.PostForm.Get("password")
	if _, ok := l.store.checkPassword(username, password); !ok {
		l.logger.Info("login refused", "user", username, "client", req.ClientID)
		p.Username, p.Error = username, "Wrong username or password."
		renderLogin(w, http.StatusUnauthorized, p)
		return
	}
	if err := l.store.completeLogin(id, username); err != nil {
		page(w, http.StatusBadRequest, "Sign-in request unknown", "This sign-in request expired. Sign in again.")
		return
	}
	l.logger.Info("login", "user", username, "client", req.ClientID)
	// 303: the browser follows with a GET, as the callback expects.
	http.Redirect(w, r, l.callback(op.ContextWithIssuer(r.Context(), l.issuer), id), http.StatusSeeOther)
}

// loggedOut is where end_session sends a browser that named no
// post_logout_redirect_uri.
func loggedOut(w http.ResponseWriter, _ *http.Request) {
	page(w, http.StatusOK, "Signed out", "You are signed out.")
}

func renderLogin(w http.ResponseWriter, status int, p loginPage) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = loginTemplate.Execute(w, p)
}

func page(w http.ResponseWriter, status int, title, text string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = pageTemplate.Execute(w, struct{ Title, Text string }{title, text})
}

const style = `<style>
body { font-family: system-ui, sans-serif; background: #f4f5f7; margin: 0; }
main { max-width: 22rem; margin: 4rem auto; background: #fff; padding: 2rem; border-radius: 8px; box-shadow: 0 1px 4px rgba(0,0,0,.15); }
h1 { font-size: 1.4rem; margin: 0 0 .5rem; }
label { display: block; margin: 1rem 0 .25rem; font-weight: 600; }
input { width: 100%; box-sizing: border-box; padding: .5rem; font-size: 1rem; }
button { margin-top: 1.5rem; width: 100%; padding: .6rem; font-size: 1rem; }
.error { color: #b00020; }
</style>`

var loginTemplate = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in</title>
` + style + `
</head>
<body>
<main>
<h1>Sign in</h1>
<p>to continue to <strong id="client">{{.Client}}</strong></p>
{{if .Error}}<p class="error" id="error" role="alert">{{.Error}}</p>
{{end}}<form method="post" action="{{.Action}}">
<input type="hidden" name="id" value="{{.ID}}">
<label for="username">Username</label>
<input id="username" name="username" type="text" autocomplete="username" value="{{.Username}}" required autofocus>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>
</main>
</body>
</html>
`))

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
` + style + `
</head>
<body>
<main>
<h1>{{.Title}}</h1>
<p>{{.Text}}</p>
</main>
</body>
</html>
`))
