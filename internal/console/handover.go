package console

// handoverRoutes lists its pages when its service is set.
func (c *Console) handoverRoutes() []route {
	if c.deps.Handover == nil {
		return nil
	}
	return nil
}
