package wecomtest

// The simulator's customer groups: group codes (add_join_way), group welcome templates, statistics.

// joinWayState is the corp's state for these APIs (a field of Corp, guarded by its mu).
//
//lint:ignore U1000 the area fills it in
type joinWayState struct{}

// groupHandlers are these APIs, by path after /cgi-bin/.
var groupHandlers = map[string]handler{}
