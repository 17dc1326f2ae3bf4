package wecomtest

// The simulator's handover: transfer_customer, transfer_result, resigned/*, get_unassigned_list, groupchat/transfer.

// transferState is the corp's state for these APIs (a field of Corp, guarded by its mu).
//
//lint:ignore U1000 the area fills it in
type transferState struct{}

// transferHandlers are these APIs, by path after /cgi-bin/.
var transferHandlers = map[string]handler{}
