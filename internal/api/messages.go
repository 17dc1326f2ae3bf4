package api

// registerMessages mounts its operations when Deps.Messages is set.
func (a *API) registerMessages() {
	if a.deps.Messages == nil {
		return
	}
}
