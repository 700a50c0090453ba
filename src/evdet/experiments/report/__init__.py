"""The HTML report: the page builder, HTML helpers and the lab sections (tracking, clips, designs, pseudo)."""
