package console

// audienceRoutes lists the pages of the audience builder, saved audiences and the score distribution charts.
func (c *Console) audienceRoutes() []route {
	return nil
}
