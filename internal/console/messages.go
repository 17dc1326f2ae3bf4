package console

// messageRoutes lists its pages when its service is set.
func (c *Console) messageRoutes() []route {
	if c.deps.Messages == nil {
		return nil
	}
	return nil
}
