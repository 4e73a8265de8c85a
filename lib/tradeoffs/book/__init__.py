"""The book's tooling: the chapter registry and profiles, the claims record, what a chapter does first
(runtime), the papermill runner, the generated pages, the figure style and the benchmarks."""
