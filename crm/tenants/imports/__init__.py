"""Importing clients from CSV files, as a resumable background job with progress."""
