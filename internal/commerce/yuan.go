package commerce

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// ParseYuan reads an amount in yuan ("128", "128.5", "¥1,280.00", "-3") as
// integer fen, exactly: the decimal string is parsed as digits, never as a
// float. More than two decimals are refused, except the long tails binary
// floating point leaves in spreadsheets (19.899999999999999), which round
// half away from zero to the fen.
func ParseYuan(s string) (int64, error) {
	t := strings.TrimSpace(s)
	for _, cut := range []string{"¥", "￥", "CNY", "RMB", "元"} {
		t = strings.ReplaceAll(t, cut, "")
	}
	t = strings.ReplaceAll(strings.TrimSpace(t), ",", "")
	neg := false
	switch {
	case strings.HasPrefix(t, "-"):
		neg, t = true, t[1:]
	case strings.HasPrefix(t, "+"):
		t = t[1:]
	}
	if strings.ContainsAny(t, "eE") {
		// Scientific notation comes from spreadsheets only; big.Rat reads it exactly.
		r, ok := new(big.Rat).SetString(t)
		if !ok {
			return 0, fmt.Errorf("%q is not an amount", s)
		}
		t = r.FloatString(20)
	}
	whole, frac, _ := strings.Cut(t, ".")
	if whole == "" && frac == "" || !allDigits(whole) || !allDigits(frac) {
		return 0, fmt.Errorf("%q is not an amount in yuan (e.g. 128.50)", s)
	}
	if whole == "" {
		whole = "0"
	}
	if len(whole) > 13 {
		return 0, fmt.Errorf("%q is too large an amount", s)
	}
	roundUp := false
	if len(frac) > 2 {
		rest := strings.TrimRight(frac[2:], "0")
		if rest != "" && len(frac) < 10 {
			return 0, fmt.Errorf("%q has more than 2 decimals: amounts are in yuan to the fen", s)
		}
		roundUp = rest != "" && rest[0] >= '5'
		frac = frac[:2]
	}
	frac += strings.Repeat("0", 2-len(frac))
	fen, err := strconv.ParseInt(whole+frac, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not an amount", s)
	}
	if roundUp {
		fen++
	}
	if neg {
		fen = -fen
	}
	return fen, nil
}

func allDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
