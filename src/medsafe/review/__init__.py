"""Review tasks: blinded double review, adjudication, human labels, sign-off."""
