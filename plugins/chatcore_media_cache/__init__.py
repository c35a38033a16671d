"""The media cache on local disk (client role): placeholder until its implementation lands."""

chatcore_role = "client"
