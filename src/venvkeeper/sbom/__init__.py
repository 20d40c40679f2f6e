"""SBOMs: a CycloneDX 1.6 document for every generation and every bundle (docs/supply-chain.md)."""
