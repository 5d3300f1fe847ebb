"""release_manifest.py: what a release of the repository would carry."""

import tempfile
import unittest
from pathlib import Path
import shutil

from release_manifest import manifest, tree_sha256

REPOSITORY_ROOT = Path(__file__).resolve().parents[3]


class ReleaseManifestTest(unittest.TestCase):
    def test_the_bundled_platform_describes_both_images_at_the_short_sha(self):
        document = manifest(REPOSITORY_ROOT, "3f9c2ab0d1e2f3a4")
        self.assertEqual([(image["name"], image["tag"]) for image in document["images"]],
                         [("trainer", "3f9c2ab"), ("serving-api", "3f9c2ab")])
        self.assertEqual(document["terraform"], ["dev", "production", "staging"])
        self.assertEqual(sorted(document["model_pins"]), ["dev", "production", "staging"])
        self.assertIn("train_churn_model.py", document["dags"]["files"])

    def test_the_dag_hash_changes_with_content_and_names_only(self):
        with tempfile.TemporaryDirectory() as directory:
            folder = Path(directory)
            (folder / "a.py").write_text("x = 1\n")
            first = tree_sha256(folder)
            (folder / "__pycache__").mkdir()
            (folder / "__pycache__" / "a.pyc").write_bytes(b"cache")
            self.assertEqual(tree_sha256(folder), first, "caches do not change the release")
            (folder / "a.py").write_text("x = 2\n")
            self.assertNotEqual(tree_sha256(folder), first)

    def test_a_missing_dockerfile_is_named(self):
        with tempfile.TemporaryDirectory() as directory:
            root = Path(directory)
            shutil.copytree(REPOSITORY_ROOT / "platform", root / "platform",
                            ignore=shutil.ignore_patterns("__pycache__"))
            (root / "platform" / "images" / "trainer" / "Dockerfile").unlink()
            with self.assertRaises(FileNotFoundError) as raised:
                manifest(root, "abc")
            self.assertIn("platform/images/trainer/Dockerfile", str(raised.exception))


if __name__ == "__main__":
    unittest.main()
