package api

// registerHandover mounts its operations when Deps.Handover is set.
func (a *API) registerHandover() {
	if a.deps.Handover == nil {
		return
	}
}
