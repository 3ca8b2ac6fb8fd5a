"""Data the book generates or ships: labelled sets, corpora, batch builders."""
