package api

// registerCommunity mounts its operations when Deps.Community is set.
func (a *API) registerCommunity() {
	if a.deps.Community == nil {
		return
	}
}
