package wecomtest

// handlers are the APIs the simulator speaks, by path after /cgi-bin/: the
// core (api.go) and one map per operations area (api_<area>.go).
var handlers = mergeHandlers(coreHandlers, acquireHandlers, messageHandlers, groupHandlers, transferHandlers, momentHandlers)

func mergeHandlers(ms ...map[string]handler) map[string]handler {
	all := map[string]handler{}
	for _, m := range ms {
		for path, h := range m {
			if _, dup := all[path]; dup {
				panic("wecomtest: API " + path + " is defined twice")
			}
			all[path] = h
		}
	}
	return all
}
