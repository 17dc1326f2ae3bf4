package wecomtest

// The simulator's mass messages (群发): add_msg_template, get_groupmsg_*, remind and cancel.

// msgState is the corp's state for these APIs (a field of Corp, guarded by its mu).
//
//lint:ignore U1000 the area fills it in
type msgState struct{}

// messageHandlers are these APIs, by path after /cgi-bin/.
var messageHandlers = map[string]handler{}
