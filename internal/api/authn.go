package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/aimhub/aim/internal/auth"
	"github.com/aimhub/aim/internal/store"
)

// caller is who a request comes from, once its credential was checked.
type caller struct {
	id auth.Identity
	// token is the API token the request carried; nil for an anonymous
	// visitor.
	token *store.Token
}

// invalidToken is the challenge of a credential that was presented and
// refused (RFC 6750, section 3.1).
const invalidToken = `Bearer realm="aim", error="invalid_token"`

// authenticate finds who r comes from: no Authorization header is an
// anonymous visitor; a bearer token is whom the store says it stands for.
// A credential that is presented and wrong, expired or revoked is a 401 on
// every route, public ones included, so that a client learns at once that
// its token no longer works rather than seeing less than it should.
func (a *API) authenticate(r *http.Request) (caller, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return caller{}, nil
	}
	scheme, secret, _ := strings.Cut(h, " ")
	secret = strings.TrimSpace(secret)
	if !strings.EqualFold(scheme, "Bearer") || secret == "" {
		return caller{}, &statusError{status: http.StatusUnauthorized, challenge: invalidToken,
			msg: "the Authorization header is not 'Bearer <token>': aim's API takes its API tokens only"}
	}
	t, err := a.tokens.VerifyToken(r.Context(), secret)
	// The messages name the token by its public ID at most, never by its
	// secret.
	switch {
	case errors.Is(err, store.ErrTokenUnknown):
		return caller{}, &statusError{status: http.StatusUnauthorized, challenge: invalidToken,
			msg: "the API token is unknown to this aim: check that it was copied whole and is for this server, or ask an admin for one"}
	case errors.Is(err, store.ErrTokenExpired):
		return caller{}, &statusError{status: http.StatusUnauthorized, challenge: invalidToken,
			msg: err.Error() + ": ask an admin for a new one"}
	case errors.Is(err, store.ErrTokenRevoked):
		return caller{}, &statusError{status: http.StatusUnauthorized, challenge: invalidToken,
			msg: err.Error() + ": ask an admin for a new one"}
	case err != nil:
		return caller{}, err
	}
	return caller{id: t.Identity(), token: t}, nil
}
