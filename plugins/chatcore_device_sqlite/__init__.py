"""The device store on SQLite (client role): placeholder until its implementation lands."""

chatcore_role = "client"
