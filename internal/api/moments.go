package api

// registerMoments mounts its operations when Deps.Moments is set.
func (a *API) registerMoments() {
	if a.deps.Moments == nil {
		return
	}
}
