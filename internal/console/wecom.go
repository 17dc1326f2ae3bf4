package console

// wecomRoutes lists the pages of the WeCom connector: settings, sync status, staff and the callback log.
func (c *Console) wecomRoutes() []route {
	return nil
}
