package wecomtest

// The simulator's moments (朋友圈): add_moment_task and its results.

// momentState is the corp's state for these APIs (a field of Corp, guarded by its mu).
//
//lint:ignore U1000 the area fills it in
type momentState struct{}

// momentHandlers are these APIs, by path after /cgi-bin/.
var momentHandlers = map[string]handler{}
