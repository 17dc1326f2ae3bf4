package console

// communityRoutes lists its pages when its service is set.
func (c *Console) communityRoutes() []route {
	if c.deps.Community == nil {
		return nil
	}
	return nil
}
