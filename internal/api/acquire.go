package api

// registerAcquire mounts its operations when Deps.Acquire is set.
func (a *API) registerAcquire() {
	if a.deps.Acquire == nil {
		return
	}
}
