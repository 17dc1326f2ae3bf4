//go:build race

package tag_test

// raceDetector is true when the tests run under -race, which slows the
// pure-Go SQLite and everything else 5–20×: timing goals are then checked
// only loosely (the benchmark and a plain go test check them as stated).
const raceDetector = true
