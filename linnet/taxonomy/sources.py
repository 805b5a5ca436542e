"""Where the official taxonomy files are published (the repository's ``taxonomy/*.json`` manifests repeat
these and record checksums of known copies; a test keeps the two in step)."""

from __future__ import annotations

from dataclasses import dataclass

from linnet.errors import ConfigError


@dataclass(frozen=True)
class TaxonomySource:
    """One published taxonomy: a URL per locale, built from ``url_template``.

    Attributes:
        name: ``"google"`` or ``"shopify"``.
        url_template: URL with ``{locale}`` (and ``{ref}`` for Shopify's git ref).
        relative_template: Path of the file in the cache and on a mirror (``--base-url``).
        locales: Every published locale.
        ref: Git ref or release (Shopify); ``None`` for Google, whose URLs always serve the current version.
        extra_files: Further files (relative path -> URL template), e.g. Shopify's mapping to Google.
    """

    name: str
    url_template: str
    relative_template: str
    locales: tuple[str, ...]
    ref: str | None = None
    extra_files: tuple[tuple[str, str], ...] = ()

    def files(self, locales=None, ref: str | None = None) -> list[tuple[str, str]]:
        """``(relative path, url)`` of every file to fetch, for ``locales`` (all by default)."""
        ref = ref or self.ref
        chosen = self.locales if locales is None else tuple(locales)
        unknown = [locale for locale in chosen if locale not in self.locales]
        if unknown:
            raise ConfigError(f"{self.name} publishes no locale {unknown}; known: {list(self.locales)}")
        files = [
            (self.relative_template.format(locale=locale, ref=ref), self.url_template.format(locale=locale, ref=ref))
            for locale in chosen
        ]
        files += [(relative.format(ref=ref), url.format(ref=ref)) for relative, url in self.extra_files]
        return files


# The locales Google lists on its Merchant Center help page "Product taxonomy" (taxonomy-with-ids.<locale>.txt).
GOOGLE = TaxonomySource(
    name="google",
    url_template="https://www.google.com/basepages/producttype/taxonomy-with-ids.{locale}.txt",
    relative_template="google/taxonomy-with-ids.{locale}.txt",
    locales=(
        "en-US", "en-AU", "en-GB", "cs-CZ", "da-DK", "de-CH", "de-DE", "es-ES", "fr-CH", "fr-FR", "it-CH", "it-IT",
        "ja-JP", "nl-NL", "no-NO", "pl-PL", "pt-BR", "ru-RU", "sv-SE", "tr-TR", "zh-CN",
    ),
)

# Shopify publishes dist/<locale>/categories.txt in github.com/Shopify/product-taxonomy; ``ref`` picks the
# release (a tag) or branch.
SHOPIFY = TaxonomySource(
    name="shopify",
    url_template="https://raw.githubusercontent.com/Shopify/product-taxonomy/{ref}/dist/{locale}/categories.txt",
    relative_template="shopify/{ref}/{locale}/categories.txt",
    locales=(
        "bg-BG", "cs", "da", "de", "el", "en", "es", "fi", "fr", "hr-HR", "hu", "id-ID", "it", "ja", "ko", "lt-LT",
        "nb", "nl", "pl", "pt-BR", "pt-PT", "ro-RO", "ru", "sk-SK", "sl-SI", "sv", "th", "tr", "vi", "zh-CN", "zh-TW",
    ),
    ref="main",
    # Shopify keeps every release's mapping in dist/en/integrations/google/, so this path holds on any newer ref.
    extra_files=(
        (
            "shopify/{ref}/en/integrations/shopify_2025-08_to_google_2021-09-21.txt",
            (
                "https://raw.githubusercontent.com/Shopify/product-taxonomy/{ref}/dist/en/integrations/"
                "google/shopify_2025-08_to_google_2021-09-21.txt"
            ),
        ),
    ),
)

SOURCES = {source.name: source for source in (GOOGLE, SHOPIFY)}
