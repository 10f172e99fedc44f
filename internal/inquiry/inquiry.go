// Package inquiry is how a visitor gets in touch with a solution's
// provider: the contact form's validation, the limits that keep the form
// from being a spam cannon, and the delivery of each inquiry to the
// provider's webhook, signed and retried. The store keeps the inquiries;
// the provider reads them with `aim inquiries` and on their page.
package inquiry

import (
	"fmt"
	"net/mail"
	"strings"
	"unicode/utf8"
)

// Form is what a visitor sends.
type Form struct {
	Name, Organisation, Email, Message string
}

// Field limits, in characters.
const (
	MaxName    = 100
	MaxOrg     = 100
	MaxEmail   = 254
	MaxMessage = 5000
)

// FieldError is one problem with a form, for the field it names.
type FieldError struct {
	Field, Msg string
}

func (e FieldError) Error() string { return e.Field + ": " + e.Msg }

// Validate trims f in place and returns its problems, one per field at
// most, in the form's order.
func Validate(f *Form) []FieldError {
	f.Name, f.Organisation = strings.TrimSpace(f.Name), strings.TrimSpace(f.Organisation)
	f.Email, f.Message = strings.TrimSpace(f.Email), strings.TrimSpace(f.Message)
	var probs []FieldError
	add := func(field, format string, args ...any) {
		probs = append(probs, FieldError{field, fmt.Sprintf(format, args...)})
	}
	text := func(field, v string, min, max int) bool {
		n := utf8.RuneCountInString(v)
		switch {
		case !utf8.ValidString(v):
			add(field, "is not valid UTF-8 text")
		case n < min:
			add(field, "is required")
		case n > max:
			add(field, "is %d characters; at most %d", n, max)
		case strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 && r != '\n' && r != '\r' && r != '\t' }):
			add(field, "contains control characters")
		default:
			return true
		}
		return false
	}
	if text("name", f.Name, 1, MaxName) && strings.ContainsAny(f.Name, "\r\n") {
		add("name", "is one line")
	}
	if text("organisation", f.Organisation, 0, MaxOrg) && strings.ContainsAny(f.Organisation, "\r\n") {
		add("organisation", "is one line")
	}
	if text("email", f.Email, 1, MaxEmail) {
		a, err := mail.ParseAddress(f.Email)
		_, domain, _ := strings.Cut(f.Email, "@")
		if err != nil || a.Address != f.Email || !strings.Contains(domain, ".") {
			add("email", "%q is not an e-mail address like name@example.com", f.Email)
		}
	}
	text("message", f.Message, 1, MaxMessage)
	return probs
}
