"""The chunker on the five real articles: structure followed, budgets kept, offsets exact."""

from __future__ import annotations

import pytest

from rolesearch.ingest.articles import ArticleError, list_article_files, read_article
from rolesearch.ingest.chunking import ChunkingParams, TokenLimits, chunk_article
from rolesearch.ingest.structure import parse_blocks
from rolesearch.ingest.tokens import tiktoken_counter
from tests.conftest import CORPUS

ARTICLES = {p.stem: p for p in list_article_files(CORPUS)}


@pytest.fixture(scope="module")
def limits(embedder):
    return TokenLimits(tiktoken_counter(), 200, embedder.count_tokens, embedder.max_tokens)


@pytest.fixture(scope="module")
def chunked(limits):
    out = {}
    for aid, path in ARTICLES.items():
        article = read_article(path, CORPUS)
        out[aid] = (article, chunk_article(article, ChunkingParams(), limits))
    return out


def test_corpus_has_the_five_articles():
    assert sorted(ARTICLES) == [
        "aporia-what-is-an-mlops-engineer",
        "mle-vs-mlops-fine-line",
        "peopleinai-ml-engineer-or-mlops-engineer",
        "tenyks-ml-vs-mlops-engineer",
        "yardstick-mlops-vs-ml-platform-engineer",
    ]


@pytest.mark.parametrize("aid", sorted(ARTICLES))
def test_offsets_slice_back_and_budgets_hold(chunked, limits, embedder, aid):
    from rolesearch.ingest.chunking import embed_text

    article, passages = chunked[aid]
    assert passages, aid
    for p in passages:
        assert article.text[p.start:p.end] == p.text
        assert 0 < p.tokens <= 200
        assert limits.count(p.text) == p.tokens
        assert embedder.count_tokens(embed_text(p.title, p.section, p.text)) <= embedder.max_tokens
    # passages are in article order and never overlap
    spans = [(p.start, p.end) for p in passages]
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))


EXPECTED_HEADINGS = {
    "tenyks-ml-vs-mlops-engineer": ["1. Why are these roles often confused?", "2. Similarities", "3. Differences", "ML Engineer", "MLOps Engineer"],
    "mle-vs-mlops-fine-line": ["1. The Rise of MLOps and Machine Learning Engineering", "2.4 The Role of Experiment Tracking and Model Versioning", "5.1 Managing Model Drift"],
    "peopleinai-ml-engineer-or-mlops-engineer": ["Machine Learning Engineer: Building Intelligent Systems", "Career Options and Salary Comparison"],
    "aporia-what-is-an-mlops-engineer": ["Data Scientist vs. MLOps Engineer", "Responsibilities of MLOps Engineers"],
    "yardstick-mlops-vs-ml-platform-engineer": ["ML Platform Engineer: Building the AI Ecosystem", "Key Responsibilities:", "Hard Skills:"],
}


@pytest.mark.parametrize("aid", sorted(EXPECTED_HEADINGS))
def test_headings_found(aid):
    article = read_article(ARTICLES[aid], CORPUS)
    found = [b.text for b in parse_blocks(article.text, article.title) if b.kind == "heading"]
    for heading in EXPECTED_HEADINGS[aid]:
        assert heading in found, (heading, found)


@pytest.mark.parametrize("aid", sorted(ARTICLES))
def test_no_passage_straddles_sections(chunked, aid):
    article, passages = chunked[aid]
    heading_starts = [b.start for b in parse_blocks(article.text, article.title) if b.kind == "heading"]
    for p in passages:
        assert not any(p.start < h < p.end for h in heading_starts), p.id


def test_rollback_item_is_whole_and_under_mlops_engineer(chunked):
    article, passages = chunked["tenyks-ml-vs-mlops-engineer"]
    [p] = [p for p in passages if "Model versioning and rollback" in p.text]
    assert p.section == ("3. Differences", "MLOps Engineer")
    assert p.text.startswith("5. Model versioning and rollback:")
    assert p.text.rstrip().endswith("issues with the current model version.")
    # the item is a passage of its own, not packed with its neighbours
    assert "Workflow optimization" not in p.text and "Troubleshooting" not in p.text


def test_list_items_stay_whole(chunked):
    article, passages = chunked["aporia-what-is-an-mlops-engineer"]
    items = [line.strip() for line in article.text.split("\n") if line.strip().startswith("•")]
    for item in items:
        assert any(item in p.text for p in passages), item


def test_single_newline_article_is_sectioned(chunked):
    _, passages = chunked["yardstick-mlops-vs-ml-platform-engineer"]
    [p] = [p for p in passages if "Infrastructure as Code (IaC): Automate" in p.text]
    assert p.section == ("ML Platform Engineer: Building the AI Ecosystem",)
    assert "Pipeline Automation" not in p.text


def test_long_paragraph_is_split_at_sentences(limits):
    from rolesearch.ingest.articles import Article

    sentence = "The MLOps engineer keeps the deployment pipeline healthy and watches every model in production. "
    text = "Long Section\n\n" + sentence * 40
    article = Article("long", "long.txt", "Long", text, "h")
    passages = chunk_article(article, ChunkingParams(max_tokens=60), TokenLimits(limits.count, 60))
    assert len(passages) > 5
    for p in passages:
        assert p.tokens <= 60
        assert p.text.endswith("production.")


def test_front_matter_html_and_title(tmp_path):
    (tmp_path / "a.md").write_text("---\ntitle: Front Title\nurl: https://x.example/a\ntags: [x, y]\n---\n# Heading\n\nBody text here.\n")
    (tmp_path / "b.html").write_text(
        "<html><head><title>HTML Title</title><script>var x=1;</script></head><body>"
        "<h1>Roles</h1><p>Intro paragraph.</p><h2>MLOps Engineer</h2><ul><li>Owns rollback of models.</li>"
        "<li>Owns monitoring.</li></ul></body></html>"
    )
    (tmp_path / "c.txt").write_text("First Line Title\n\nSome text.\n")
    a = read_article(tmp_path / "a.md", tmp_path)
    assert (a.title, a.url, a.tags) == ("Front Title", "https://x.example/a", ("x", "y"))
    assert a.text.startswith("# Heading")
    b = read_article(tmp_path / "b.html", tmp_path)
    assert b.title == "HTML Title" and "var x" not in b.text
    blocks = parse_blocks(b.text, b.title, b.headings)
    assert [x.text for x in blocks if x.kind == "heading"] == ["Roles", "MLOps Engineer"]
    assert [x.text for x in blocks if x.kind == "item"] == ["- Owns rollback of models.", "- Owns monitoring."]
    assert read_article(tmp_path / "c.txt", tmp_path).title == "First Line Title"


def test_front_matter_access_groups(tmp_path):
    (tmp_path / "a.md").write_text("---\naccess: [hr, ' leads']\n---\nBody.\n")
    (tmp_path / "b.md").write_text("---\naccess: hr, finance\n---\nBody.\n")
    (tmp_path / "c.md").write_text("---\naccess: {hr: 1}\n---\nBody.\n")
    (tmp_path / "d.md").write_text("Body.\n")
    assert read_article(tmp_path / "a.md", tmp_path).access == ("hr", "leads")
    assert read_article(tmp_path / "b.md", tmp_path).access == ("finance", "hr")
    with pytest.raises(ArticleError, match="access"):
        read_article(tmp_path / "c.md", tmp_path)
    assert read_article(tmp_path / "d.md", tmp_path).access == ()
