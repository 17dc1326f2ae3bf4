package console

// momentRoutes lists its pages when its service is set.
func (c *Console) momentRoutes() []route {
	if c.deps.Moments == nil {
		return nil
	}
	return nil
}
