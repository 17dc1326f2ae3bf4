package console

// tagRoutes lists the pages of tags, tag groups and auto-tag rules.
func (c *Console) tagRoutes() []route {
	return nil
}
