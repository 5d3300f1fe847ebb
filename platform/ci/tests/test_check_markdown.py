"""check_markdown.py on small documents, one problem per case."""

import tempfile
import unittest
from pathlib import Path

from check_markdown import check_text, main


class CheckMarkdownTest(unittest.TestCase):
    def setUp(self):
        directory = tempfile.TemporaryDirectory()
        self.addCleanup(directory.cleanup)
        self.root = Path(directory.name)
        (self.root / "docs").mkdir()
        (self.root / "docs" / "exists.md").write_text("# here\n")

    def check(self, text, expected_fragments):
        problems = check_text(self.root / "README.md", text, self.root)
        self.assertEqual(len(problems), len(expected_fragments), problems)
        for problem, fragment in zip(problems, expected_fragments):
            self.assertIn(fragment, problem)

    def test_good_links_pass(self):
        self.check("[a](docs/exists.md) [b](docs/exists.md#here) [c](https://example.com) [d](#top)\n", [])

    def test_a_broken_relative_link_names_file_and_line(self):
        self.check("intro\n[a](docs/missing.md)\n", ["README.md:2: link to `docs/missing.md` points at nothing"])

    def test_a_broken_image_is_reported(self):
        self.check("![diagram](img/flow.png)\n", ["`img/flow.png`"])

    def test_links_inside_code_are_ignored(self):
        self.check("```\n[a](nowhere.md)\n```\nuse `[x](y.md)` syntax\n", [])

    def test_an_unclosed_fence_is_reported_where_it_opens(self):
        self.check("text\n```bash\necho\n", ["README.md:2: code fence ``` is never closed"])

    def test_a_conflict_marker_is_reported(self):
        self.check("<<<<<<< HEAD\nmine\n=======\ntheirs\n>>>>>>> branch\n", ["`<<<<<<<`", "`=======`", "`>>>>>>>`"])

    def test_main_fails_on_any_problem_and_skips_tool_directories(self):
        (self.root / "README.md").write_text("[x](nope.md)\n")
        (self.root / "target").mkdir()
        (self.root / "target" / "bad.md").write_text("```\n")
        self.assertEqual(main([str(self.root)]), 1)
        (self.root / "README.md").write_text("[x](docs/exists.md)\n")
        self.assertEqual(main([str(self.root)]), 0)


if __name__ == "__main__":
    unittest.main()
