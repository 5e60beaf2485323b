# The upstream "Creating Custom Workers" tutorial's first worker, unchanged except that the
# mangled emoji in its print() calls are spelled as plain text. It must run as it is against
# this project's stub: from the repository root, `python examples/tutorial_worker.py`
# spawns `python pm_agent_mcp_server.py` (the stdio stub on PM_AGENT_DB) like the tutorial.
import asyncio
import json
from datetime import datetime
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

class DocumentationWorker:
    def __init__(self):
        self.agent_id = "doc-worker-001"
        self.name = "Documentation Worker"
        self.role = "Documentation Specialist"
        self.skills = ["documentation", "markdown", "api-docs", "tutorials"]

    async def start(self):
        """Main entry point for the worker"""
        # Configure connection to PM Agent
        server_params = StdioServerParameters(
            command="python",
            args=["pm_agent_mcp_server.py"]
        )

        # Connect to PM Agent
        async with stdio_client(server_params) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()

                # Register with PM Agent
                await self.register(session)

                # Start work loop
                while True:
                    await self.work_cycle(session)
                    await asyncio.sleep(30)  # Rest between cycles

    async def register(self, session):
        """Register this worker with PM Agent"""
        result = await session.call_tool("register_agent", {
            "agent_id": self.agent_id,
            "name": self.name,
            "role": self.role,
            "skills": self.skills
        })

        response = json.loads(result.content[0].text)
        if response.get("success"):
            print(f"[ok] Registered as {self.name}")
        else:
            raise Exception(f"Registration failed: {response}")

    async def work_cycle(self, session):
        """Request and complete a task"""
        # Request next task
        result = await session.call_tool("request_next_task", {
            "agent_id": self.agent_id
        })

        response = json.loads(result.content[0].text)

        if not response.get("has_task"):
            print("[zz] No tasks available, waiting...")
            return

        # Extract task information
        task = response["assignment"]
        task_id = task["task_id"]

        print(f"[task] Received task: {task['task_name']}")

        # Start working
        await self.report_progress(session, task_id, 0, "Starting documentation task")

        try:
            # Simulate work
            await self.execute_task(session, task)

            # Report completion
            await self.report_progress(session, task_id, 100, "Documentation completed", "completed")

        except Exception as e:
            # Report blocker if something goes wrong
            await self.report_blocker(session, task_id, str(e))

    async def execute_task(self, session, task):
        """Execute the documentation task"""
        # Simulate different documentation tasks
        if "api" in task["task_name"].lower():
            await self.document_api(session, task)
        elif "tutorial" in task["task_name"].lower():
            await self.write_tutorial(session, task)
        else:
            await self.general_documentation(session, task)

    async def document_api(self, session, task):
        """Handle API documentation tasks"""
        task_id = task["task_id"]

        # Progress: Analyzing code
        await self.report_progress(session, task_id, 25, "Analyzing API endpoints")
        await asyncio.sleep(2)  # Simulate work

        # Progress: Generating docs
        await self.report_progress(session, task_id, 50, "Generating OpenAPI documentation")
        await asyncio.sleep(2)

        # Progress: Creating examples
        await self.report_progress(session, task_id, 75, "Adding code examples")
        await asyncio.sleep(2)

        print("[doc] API documentation completed")

    async def report_progress(self, session, task_id, progress, message, status="in_progress"):
        """Report task progress to PM Agent"""
        await session.call_tool("report_task_progress", {
            "agent_id": self.agent_id,
            "task_id": task_id,
            "status": status,
            "progress": progress,
            "message": message
        })

    async def report_blocker(self, session, task_id, description):
        """Report a blocker to PM Agent"""
        result = await session.call_tool("report_blocker", {
            "agent_id": self.agent_id,
            "task_id": task_id,
            "blocker_description": description,
            "severity": "medium"
        })

        response = json.loads(result.content[0].text)
        if response.get("resolution_suggestion"):
            print(f"[hint] Suggestion: {response['resolution_suggestion']}")

# Run the worker
if __name__ == "__main__":
    worker = DocumentationWorker()
    asyncio.run(worker.start())
