"""``keyscope usage``: was a leaked Azure Storage credential used, by whom, to do what,
read from the storage account's own logs (Azure Monitor resource logs, Log Analytics
exports, classic ``$logs``)."""
