"""Reports of a run: the journal (JSON), JUnit XML, the live console; secrets kept out of all."""
