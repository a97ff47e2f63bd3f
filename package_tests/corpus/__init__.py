"""Student answers to the homework, and the tools to turn them into graded notebooks."""
