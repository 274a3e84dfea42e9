"""Images and report QC: image/DICOM attachments, de-identification, error injection."""
