package customer

import (
	"strings"

	"github.com/siyu-dev/siyu/internal/errs"
)

// NormalizePhone returns a phone number in E.164 form. Numbers without a
// country code are taken as mainland China (+86): an 11-digit mobile number
// starting with 1. Spaces, dashes, dots and brackets are ignored.
func NormalizePhone(s string) (string, error) {
	var b strings.Builder
	for i, r := range strings.TrimSpace(s) {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '+' && i == 0:
			b.WriteRune(r)
		case r == ' ' || r == '-' || r == '.' || r == '(' || r == ')':
		default:
			return "", errs.Field("phone", "invalid_phone", "%q is not a phone number", s)
		}
	}
	d := b.String()
	switch {
	case strings.HasPrefix(d, "+"):
		// already international
	case strings.HasPrefix(d, "0086"):
		d = "+" + d[2:]
	case len(d) == 13 && strings.HasPrefix(d, "86"):
		d = "+" + d
	case len(d) == 11 && d[0] == '1':
		d = "+86" + d
	default:
		return "", errs.Field("phone", "invalid_phone", "%q is not a phone number (expected a mainland mobile number or +country code)", s)
	}
	digits := d[1:]
	if len(digits) < 8 || len(digits) > 15 {
		return "", errs.Field("phone", "invalid_phone", "%q is not a phone number (wrong length)", s)
	}
	if strings.HasPrefix(d, "+86") && (len(digits) != 13 || digits[2] != '1') {
		return "", errs.Field("phone", "invalid_phone", "%q is not a mainland China mobile number (11 digits starting with 1)", s)
	}
	return d, nil
}
