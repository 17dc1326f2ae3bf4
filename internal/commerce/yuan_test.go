package commerce

import "testing"

func TestParseYuanIsExact(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		fen  int64
		fail bool
	}{
		{in: "128", fen: 12800},
		{in: "128.5", fen: 12850},
		{in: "0.1", fen: 10},
		{in: ".5", fen: 50},
		{in: "19.90", fen: 1990},
		{in: "¥1,280.00", fen: 128000},
		{in: "￥ 3.20 元", fen: 320},
		{in: "-3", fen: -300},
		{in: "1.500", fen: 150},               // trailing zeros are fine
		{in: "19.899999999999999", fen: 1990}, // a spreadsheet's float tail rounds
		{in: "0.30000000000000004", fen: 30},  // likewise
		{in: "1.2E+3", fen: 120000},           // scientific notation from a sheet
		{in: "92233720368547.75", fail: true}, // too large
		{in: "12.345", fail: true},            // a third decimal is a mistake
		{in: "12,5", fen: 12500},              // a thousands separator, not a decimal comma
		{in: "abc", fail: true},
		{in: "", fail: true},
		{in: "1.2.3", fail: true},
	} {
		fen, err := ParseYuan(tc.in)
		if tc.fail {
			if err == nil {
				t.Errorf("ParseYuan(%q) = %d, want an error", tc.in, fen)
			}
			continue
		}
		if err != nil || fen != tc.fen {
			t.Errorf("ParseYuan(%q) = %d, %v; want %d", tc.in, fen, err, tc.fen)
		}
	}
}
