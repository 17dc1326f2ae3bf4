// Package errs defines the application error type shared by every domain package.
//
// Domain code returns *errs.Error with a Kind (which decides the HTTP status in
// the api and console packages, and nowhere else), a stable machine-readable
// Code, and a Message that is safe to show a user. Anything else that escapes
// to the HTTP layer is treated as an internal error and its text is hidden.
package errs

import (
	"errors"
	"fmt"
)

// Kind classifies an error; the HTTP layer maps each kind to one status code.
type Kind int

// Error kinds.
const (
	Internal        Kind = iota // a bug or an outage; the message is not shown
	Invalid                     // the request is malformed or fails validation
	NotFound                    // the thing does not exist (or belongs to another workspace)
	Conflict                    // the request conflicts with current state
	Unauthenticated             // no or bad credentials
	Forbidden                   // credentials are fine but the role may not do this
	RateLimited                 // too many requests; try later
	TooLarge                    // the request body or a field is over a limit
)

// String returns the default code for the kind.
func (k Kind) String() string {
	switch k {
	case Invalid:
		return "invalid"
	case NotFound:
		return "not_found"
	case Conflict:
		return "conflict"
	case Unauthenticated:
		return "unauthenticated"
	case Forbidden:
		return "forbidden"
	case RateLimited:
		return "rate_limited"
	case TooLarge:
		return "too_large"
	default:
		return "internal"
	}
}

// FieldError points at one bad part of the input.
type FieldError struct {
	// Location is a JSON-pointer-like path, e.g. "body.email" or "conditions.and[2].op".
	Location string `json:"location"`
	Message  string `json:"message"`
}

// Error is an error a user may see.
type Error struct {
	Kind    Kind
	Code    string // stable, machine-readable, snake_case; defaults to Kind.String()
	Message string // human-readable, safe to show
	Fields  []FieldError
	Err     error // optional cause, never shown
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.code(), e.Message, e.Err)
	}
	return e.code() + ": " + e.Message
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

func (e *Error) code() string {
	if e.Code != "" {
		return e.Code
	}
	return e.Kind.String()
}

// E builds an error of the given kind and code with a formatted message.
func E(kind Kind, code, format string, args ...any) *Error {
	return &Error{Kind: kind, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Field builds an Invalid error for one bad field.
func Field(location, code, format string, args ...any) *Error {
	msg := fmt.Sprintf(format, args...)
	return &Error{Kind: Invalid, Code: code, Message: msg, Fields: []FieldError{{Location: location, Message: msg}}}
}

// NotFoundf is shorthand for a NotFound error with code "<what>_not_found".
func NotFoundf(what string, format string, args ...any) *Error {
	return E(NotFound, what+"_not_found", format, args...)
}

// As returns the *Error in err's chain, if any.
func As(err error) (*Error, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e, true
	}
	return nil, false
}

// KindOf returns the kind of err, Internal when it is not an *Error.
func KindOf(err error) Kind {
	if e, ok := As(err); ok {
		return e.Kind
	}
	return Internal
}

// CodeOf returns the machine-readable code of err ("internal" when unknown).
func CodeOf(err error) string {
	if e, ok := As(err); ok {
		return e.code()
	}
	return Internal.String()
}

// Is reports whether err is an *Error of the given kind.
func Is(err error, kind Kind) bool {
	e, ok := As(err)
	return ok && e.Kind == kind
}
