package console

// acquireRoutes lists its pages when its service is set.
func (c *Console) acquireRoutes() []route {
	if c.deps.Acquire == nil {
		return nil
	}
	return nil
}
